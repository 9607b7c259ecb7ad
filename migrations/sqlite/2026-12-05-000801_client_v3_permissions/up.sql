-- Version 3 makes introspection need `tokens:introspect` and the change feed `feed:read`. Clients
-- that exist when it is installed keep the power they had: each is given both.
INSERT OR IGNORE INTO client_permissions (client_id, permission) SELECT client_id, 'tokens:introspect' FROM clients;
INSERT OR IGNORE INTO client_permissions (client_id, permission) SELECT client_id, 'feed:read' FROM clients;
