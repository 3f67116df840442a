-- docker-compose: the PELBIOT app database beside the ops database, both for the pelbiot user.
CREATE DATABASE IF NOT EXISTS pelbiot CHARACTER SET utf8mb4;
GRANT ALL PRIVILEGES ON pelbiot.* TO 'pelbiot'@'%';
GRANT ALL PRIVILEGES ON pelbiot_ops.* TO 'pelbiot'@'%';
-- Slow-query analysis and index advice read these.
GRANT PROCESS, SELECT ON *.* TO 'pelbiot'@'%';
