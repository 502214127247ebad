from django.db import migrations

# The function is created in the brand's own schema (first on the search_path during migrate), so
# each schema is self-contained and a clone of the template carries it along.
APPEND_ONLY = """
CREATE OR REPLACE FUNCTION brand_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER auditentry_append_only BEFORE UPDATE OR DELETE ON brand_auditentry
    FOR EACH ROW EXECUTE FUNCTION brand_refuse_change();
CREATE TRIGGER auditentry_no_truncate BEFORE TRUNCATE ON brand_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION brand_refuse_change();
"""
DROP = """
DROP TRIGGER IF EXISTS auditentry_append_only ON brand_auditentry;
DROP TRIGGER IF EXISTS auditentry_no_truncate ON brand_auditentry;
DROP FUNCTION IF EXISTS brand_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("brand", "0001_initial")]

    operations = [migrations.RunSQL(APPEND_ONLY, DROP)]
