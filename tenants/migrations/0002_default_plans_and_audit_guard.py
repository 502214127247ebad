from django.db import migrations

PLANS = [
    # code, name, staff, stores, codes per month, campaigns, annual fee (fen)
    ("trial", "试用版", 5, 20, 100_000, 2, 0),
    ("standard", "标准版", 30, 2_000, 20_000_000, 20, 6_800_000),
    ("enterprise", "企业版", 300, 50_000, 500_000_000, 200, 28_800_000),
]

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION jiuma_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER opsauditentry_append_only BEFORE UPDATE OR DELETE ON tenants_opsauditentry
    FOR EACH ROW EXECUTE FUNCTION jiuma_refuse_change();
CREATE TRIGGER opsauditentry_no_truncate BEFORE TRUNCATE ON tenants_opsauditentry
    FOR EACH STATEMENT EXECUTE FUNCTION jiuma_refuse_change();
"""
DROP = """
DROP TRIGGER IF EXISTS opsauditentry_append_only ON tenants_opsauditentry;
DROP TRIGGER IF EXISTS opsauditentry_no_truncate ON tenants_opsauditentry;
"""


def add_plans(apps, schema_editor):
    Plan = apps.get_model("tenants", "Plan")
    for code, name, staff, stores, codes, campaigns, fee in PLANS:
        Plan.objects.update_or_create(code=code, defaults={
            "name": name, "max_staff": staff, "max_stores": stores, "max_codes_per_month": codes,
            "max_active_campaigns": campaigns, "annual_fee_fen": fee,
        })


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        migrations.RunPython(add_plans, migrations.RunPython.noop),
        migrations.RunSQL(APPEND_ONLY, DROP),
    ]
