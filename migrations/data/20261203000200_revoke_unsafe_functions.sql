-- Tenant queries run as per-tenant reader roles (see the query service). These
-- functions are executable by PUBLIC by default, and each lets a reader step
-- outside its fence: `set_config('role', ...)` switches to any role the
-- session user may become; the text-query functions run SQL the query gate
-- never sees; session advisory locks outlive the query's transaction on a
-- pooled connection and can stall the sinks. Platform services connect as
-- the database owner and are not affected.
revoke execute on function pg_catalog.set_config(text, text, boolean) from public;
revoke execute on function pg_catalog.ts_stat(text) from public;
revoke execute on function pg_catalog.ts_stat(text, text) from public;
revoke execute on function pg_catalog.ts_rewrite(tsquery, text) from public;
revoke execute on function pg_catalog.query_to_xml(text, boolean, boolean, text) from public;
revoke execute on function pg_catalog.query_to_xmlschema(text, boolean, boolean, text) from public;
revoke execute on function pg_catalog.query_to_xml_and_xmlschema(text, boolean, boolean, text)
    from public;
revoke execute on function pg_catalog.cursor_to_xml(refcursor, integer, boolean, boolean, text)
    from public;
revoke execute on function pg_catalog.cursor_to_xmlschema(refcursor, boolean, boolean, text)
    from public;
revoke execute on function pg_catalog.pg_advisory_lock(bigint) from public;
revoke execute on function pg_catalog.pg_advisory_lock(integer, integer) from public;
revoke execute on function pg_catalog.pg_advisory_lock_shared(bigint) from public;
revoke execute on function pg_catalog.pg_advisory_lock_shared(integer, integer) from public;
revoke execute on function pg_catalog.pg_try_advisory_lock(bigint) from public;
revoke execute on function pg_catalog.pg_try_advisory_lock(integer, integer) from public;
revoke execute on function pg_catalog.pg_try_advisory_lock_shared(bigint) from public;
revoke execute on function pg_catalog.pg_try_advisory_lock_shared(integer, integer) from public;
revoke execute on function pg_catalog.pg_advisory_xact_lock(bigint) from public;
revoke execute on function pg_catalog.pg_advisory_xact_lock(integer, integer) from public;
revoke execute on function pg_catalog.pg_notify(text, text) from public;
