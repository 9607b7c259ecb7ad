DELETE FROM role_permissions WHERE role_name IN ('admin', 'user');
DELETE FROM roles WHERE name IN ('admin', 'user');
