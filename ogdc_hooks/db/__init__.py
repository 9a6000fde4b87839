"""PostgreSQL: the engine, the tables, the migrations and the embedded server."""
