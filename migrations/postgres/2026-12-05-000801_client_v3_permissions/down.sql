-- Version 2 knows neither permission (it would refuse them as unknown), so going back removes
-- them from every client, also from those given them after the upgrade.
DELETE FROM client_permissions WHERE permission IN ('tokens:introspect', 'feed:read');
