-- The built-in roles. `admin` is granted every permission of the catalogue in code as well, so
-- permissions added later reach it without a migration.
INSERT INTO roles (name, description, builtin, created_at) VALUES
    ('admin', 'Administrators: every permission', TRUE, 0),
    ('user', 'Default role of new accounts', TRUE, 0);

INSERT INTO role_permissions (role_name, permission) VALUES
    ('admin', 'users:read'),
    ('admin', 'users:write'),
    ('admin', 'roles:read'),
    ('admin', 'roles:write'),
    ('admin', 'sessions:read'),
    ('admin', 'sessions:revoke'),
    ('admin', 'audit:read');
