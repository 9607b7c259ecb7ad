DROP TABLE role_changes;
