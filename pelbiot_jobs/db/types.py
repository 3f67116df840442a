"""Column types that behave the same on MySQL/MariaDB and SQLite."""

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.dialects import mysql

#: Auto-increment 64-bit ids; SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
#: UTC timestamps with microseconds (MySQL's DATETIME drops fractions unless told otherwise).
UtcDateTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
