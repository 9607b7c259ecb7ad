DROP TABLE client_permissions;
DROP TABLE clients;
