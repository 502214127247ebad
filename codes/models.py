"""Code batches, serial allocation and the sparse state of codes.

No row exists per code: a batch owns ranges of serials (bottles, cases, pallets), codes are derived
from the brand's key (codes.format), and only codes with an event get state (a status rule over a
serial range, later scans and associations).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from codes.format import MAX_SERIAL, Kind


class SerialGroup(models.TextChoices):
    """Serial spaces: inner and outer codes of a bottle share the bottle's serial."""

    BOTTLE = "bottle", _("瓶")
    CASE = "case", _("箱")
    PALLET = "pallet", _("托盘")

    @classmethod
    def of(cls, kind: Kind) -> SerialGroup:
        return {Kind.INNER: cls.BOTTLE, Kind.OUTER: cls.BOTTLE, Kind.CASE: cls.CASE, Kind.PALLET: cls.PALLET}[kind]


class SerialCounter(models.Model):
    """The next free serial of each group; batches take ranges from it under a row lock."""

    group = models.CharField(max_length=8, choices=SerialGroup.choices, unique=True)
    next_serial = models.BigIntegerField(default=1)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(next_serial__gte=1, next_serial__lte=MAX_SERIAL + 1), name="serial_counter_range"
            )
        ]

    def __str__(self) -> str:
        return f"{self.group}: {self.next_serial}"


class BatchStatus(models.TextChoices):
    GENERATING = "generating", _("生成中")
    READY = "ready", _("已生成")
    FAILED = "failed", _("生成失败")


class Batch(models.Model):
    """One print run (批次): serial ranges of bottles (inner and/or outer codes), cases and pallets."""

    number = models.CharField(_("批次号"), max_length=32, unique=True)
    key_version = models.PositiveSmallIntegerField(_("密钥版本"))
    has_inner = models.BooleanField(_("盖内码"), default=True)
    has_outer = models.BooleanField(_("盖外码"), default=True)
    bottles = models.PositiveIntegerField(_("瓶数"), default=0)
    first_bottle_serial = models.BigIntegerField(null=True, blank=True)
    bottles_per_case = models.PositiveSmallIntegerField(_("每箱瓶数"), default=0)
    cases = models.PositiveIntegerField(_("箱数"), default=0)
    first_case_serial = models.BigIntegerField(null=True, blank=True)
    cases_per_pallet = models.PositiveSmallIntegerField(_("每托盘箱数"), default=0)
    pallets = models.PositiveIntegerField(_("托盘数"), default=0)
    first_pallet_serial = models.BigIntegerField(null=True, blank=True)
    sku = models.ForeignKey(
        "commerce.Sku", null=True, blank=True, on_delete=models.PROTECT, related_name="batches", verbose_name=_("SKU")
    )
    bound_at = models.DateTimeField(_("赋值时间"), null=True, blank=True)
    production_date = models.DateField(_("生产日期"), null=True, blank=True)
    production_line = models.CharField(_("生产线"), max_length=50, blank=True)
    note = models.CharField(_("备注"), max_length=200, blank=True)

    status = models.CharField(_("状态"), max_length=12, choices=BatchStatus.choices, default=BatchStatus.GENERATING)
    progress = models.PositiveSmallIntegerField(_("进度（%）"), default=0)
    error = models.CharField(_("失败原因"), max_length=300, blank=True)
    package_path = models.CharField(max_length=300, blank=True)
    package_sha256 = models.CharField(max_length=64, blank=True)
    package_bytes = models.BigIntegerField(default=0)
    # The package's zip password, wrapped under the master key until it is shown (once).
    password_key_id = models.CharField(max_length=64, blank=True)
    password_wrapped = models.BinaryField(default=b"", blank=True)
    max_downloads = models.PositiveSmallIntegerField(_("允许下载次数"), default=3)
    downloads = models.PositiveSmallIntegerField(_("已下载次数"), default=0)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    ready_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("赋码批次")
        verbose_name_plural = _("赋码批次")
        ordering = ["-created_at"]
        permissions = [("download_batch", _("下载印刷包"))]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(downloads__lte=models.F("max_downloads")), name="batch_downloads"
            ),
            models.CheckConstraint(
                condition=models.Q(bottles__gt=0) | models.Q(cases__gt=0) | models.Q(pallets__gt=0),
                name="batch_not_empty",
            ),
            models.CheckConstraint(
                condition=models.Q(bottles=0) | models.Q(has_inner=True) | models.Q(has_outer=True),
                name="batch_bottle_kinds",
            ),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="batch_progress"),
        ]

    def __str__(self) -> str:
        return self.number

    def serial_range(self, group: SerialGroup) -> range:
        first, count = {
            SerialGroup.BOTTLE: (self.first_bottle_serial, self.bottles),
            SerialGroup.CASE: (self.first_case_serial, self.cases),
            SerialGroup.PALLET: (self.first_pallet_serial, self.pallets),
        }[group]
        if not count or first is None:
            return range(0)
        return range(first, first + count)

    @property
    def kinds(self) -> list[Kind]:
        kinds = []
        if self.bottles and self.has_inner:
            kinds.append(Kind.INNER)
        if self.bottles and self.has_outer:
            kinds.append(Kind.OUTER)
        if self.cases:
            kinds.append(Kind.CASE)
        if self.pallets:
            kinds.append(Kind.PALLET)
        return kinds

    @property
    def code_count(self) -> int:
        return sum(len(self.serial_range(SerialGroup.of(kind))) for kind in self.kinds)


class CodeStatus(models.TextChoices):
    ACTIVE = "active", _("已激活")
    FROZEN = "frozen", _("已冻结")
    VOID = "void", _("已作废")
    BLACKLISTED = "blacklisted", _("黑名单")


class StatusRule(models.Model):
    """A status given to a serial range (a whole batch, part of one, or a single code).

    State is sparse: the status of a code is that of the newest rule covering its serial, or
    "not activated" when no rule does.
    """

    group = models.CharField(max_length=8, choices=SerialGroup.choices)
    first_serial = models.BigIntegerField()
    last_serial = models.BigIntegerField()
    status = models.CharField(_("状态"), max_length=12, choices=CodeStatus.choices)
    reason = models.CharField(_("原因"), max_length=200, blank=True)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="status_rules")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("码状态变更")
        verbose_name_plural = _("码状态变更")
        indexes = [models.Index(fields=["group", "first_serial", "last_serial"], name="status_rule_lookup")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(last_serial__gte=models.F("first_serial")), name="status_rule_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.group} {self.first_serial}-{self.last_serial}: {self.status}"


class ScanSource(models.TextChoices):
    CONSUMER = "consumer", _("消费者")
    STORE = "store", _("门店")
    DEALER = "dealer", _("经销商")
    FACTORY = "factory", _("工厂")


class LocatedBy(models.TextChoices):
    """Where a scan's region came from."""

    IP = "ip", _("IP 地址")
    POSITION = "position", _("手机定位")


class Scan(models.Model):
    """One scan of any code. Built for billions of rows: partitioned by month on scanned_at (the
    table is created by migration 0002 with raw DDL; the database's primary key is (id, scanned_at),
    Django addresses rows by id), a BRIN index on time and one B-tree on (kind, serial) per partition.
    """

    id = models.BigAutoField(primary_key=True)
    scanned_at = models.DateTimeField(_("扫码时间"), default=timezone.now)
    kind = models.PositiveSmallIntegerField(_("码类型"), choices=[(kind.value, kind.name) for kind in Kind])
    serial = models.BigIntegerField(_("序号"))
    key_version = models.PositiveSmallIntegerField()
    batch_id = models.BigIntegerField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=ScanSource.choices, default=ScanSource.CONSUMER)
    member_id = models.BigIntegerField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    region_code = models.CharField(_("地区"), max_length=6, blank=True)
    # A position the consumer's browser shared (rounded to 0.001°, ~100 m), set at most once.
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    located_by = models.CharField(
        _("定位方式"), max_length=8, choices=LocatedBy.choices, blank=True, default="", db_default=""
    )
    user_agent = models.CharField(max_length=300, blank=True)
    is_first = models.BooleanField(_("首次扫码"), default=False)

    class Meta:
        managed = True
        verbose_name = _("扫码记录")
        verbose_name_plural = _("扫码记录")

    def __str__(self) -> str:
        return f"{Kind(self.kind).letter}{self.serial} @ {self.scanned_at:%Y-%m-%d %H:%M}"


class CodeSummary(models.Model):
    """First scan and count of each code that was ever scanned (sparse: one row per scanned code)."""

    kind = models.PositiveSmallIntegerField(choices=[(kind.value, kind.name) for kind in Kind])
    serial = models.BigIntegerField()
    first_scanned_at = models.DateTimeField(_("首次扫码时间"))
    first_region_code = models.CharField(_("首次扫码地区"), max_length=6, blank=True)
    last_scanned_at = models.DateTimeField(_("最近扫码时间"))
    scan_count = models.PositiveIntegerField(_("扫码次数"), default=0)

    class Meta:
        verbose_name = _("码扫码汇总")
        verbose_name_plural = _("码扫码汇总")
        constraints = [models.UniqueConstraint(fields=["kind", "serial"], name="code_summary_one_per_code")]

    def __str__(self) -> str:
        return f"{Kind(self.kind).letter}{self.serial}: {self.scan_count}"


class AssociationUpload(models.Model):
    """One packing-line file (or API call) of parent→child links, applied whole or not at all."""

    sha256 = models.CharField(max_length=64)
    filename = models.CharField(_("文件名"), max_length=200, blank=True)
    lines = models.PositiveIntegerField(_("行数"), default=0)
    linked = models.PositiveIntegerField(_("新建关联"), default=0)
    applied = models.BooleanField(_("已生效"), default=False)
    errors = models.PositiveIntegerField(_("错误行数"), default=0)
    report = models.JSONField(_("逐行报告"), default=list)
    source = models.CharField(max_length=20, default="upload")  # upload / api:<key name>
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("上传时间"), default=timezone.now)

    class Meta:
        verbose_name = _("关联上传")
        verbose_name_plural = _("关联上传")
        ordering = ["-created_at"]
        constraints = [
            # A file is applied at most once; re-uploading it returns the first report.
            models.UniqueConstraint(
                fields=["sha256"], condition=models.Q(applied=True), name="association_applied_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.filename or self.sha256[:12]} ({self.lines})"


class CodeLink(models.Model):
    """A child code packed in a parent: bottle→case or case→pallet (关联). One parent per child."""

    child_group = models.CharField(max_length=8, choices=SerialGroup.choices)
    child_serial = models.BigIntegerField()
    parent_group = models.CharField(max_length=8, choices=SerialGroup.choices)
    parent_serial = models.BigIntegerField()
    upload = models.ForeignKey(AssociationUpload, null=True, on_delete=models.PROTECT, related_name="links")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("码关联")
        verbose_name_plural = _("码关联")
        constraints = [
            models.UniqueConstraint(fields=["child_group", "child_serial"], name="code_link_one_parent"),
        ]
        indexes = [models.Index(fields=["parent_group", "parent_serial"], name="code_link_children")]

    def __str__(self) -> str:
        return f"{self.child_group}{self.child_serial} → {self.parent_group}{self.parent_serial}"


class MovementKind(models.TextChoices):
    OUTBOUND = "outbound", _("出库")
    RECEIVE = "receive", _("入库")


class Movement(models.Model):
    """A case or pallet scanned out to a dealer (出库) or into a store (入库).

    One row per scanned case or pallet, never per bottle: a bottle's channel is that of its case
    (codes.association.parent_of), and a case's that of its pallet when the case itself was not
    scanned.
    """

    kind = models.CharField(_("类型"), max_length=10, choices=MovementKind.choices)
    group = models.CharField(max_length=8, choices=SerialGroup.choices)
    serial = models.BigIntegerField()
    dealer = models.ForeignKey(
        "commerce.Dealer", on_delete=models.PROTECT, related_name="movements", verbose_name=_("经销商")
    )
    store = models.ForeignKey(
        "commerce.Store",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="movements",
        verbose_name=_("门店"),
    )
    at = models.DateTimeField(_("时间"), default=timezone.now)
    by_name = models.CharField(_("操作人"), max_length=80, blank=True)
    source = models.CharField(max_length=20, default="terminal")  # terminal / api:<key> / admin

    class Meta:
        verbose_name = _("出入库记录")
        verbose_name_plural = _("出入库记录")
        indexes = [models.Index(fields=["group", "serial", "-at"], name="movement_of_code")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(group__in=[SerialGroup.CASE, SerialGroup.PALLET]), name="movement_of_case_or_pallet"
            ),
            models.CheckConstraint(
                condition=models.Q(kind=MovementKind.OUTBOUND) | models.Q(store__isnull=False),
                name="movement_receive_has_store",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.group}{self.serial}"


class AlertSeverity(models.TextChoices):
    LOW = "low", _("低")
    MEDIUM = "medium", _("中")
    HIGH = "high", _("高")


class DiversionAlert(models.Model):
    """窜货: a bottle scanned outside its dealer's authorised areas. One alert per bottle."""

    serial = models.BigIntegerField(_("瓶序号"))
    case_serial = models.BigIntegerField(_("箱序号"), null=True, blank=True)
    dealer = models.ForeignKey(
        "commerce.Dealer", on_delete=models.PROTECT, related_name="diversion_alerts", verbose_name=_("经销商")
    )
    outbound_at = models.DateTimeField(_("出库时间"))
    scan_id = models.BigIntegerField()
    scanned_at = models.DateTimeField(_("扫码时间"))
    scan_region_code = models.CharField(_("扫码地区"), max_length=6)
    severity = models.CharField(_("级别"), max_length=8, choices=AlertSeverity.choices)
    evidence = models.JSONField(_("证据链"), default=dict)
    handled_at = models.DateTimeField(_("处理时间"), null=True, blank=True)
    handled_note = models.CharField(_("处理说明"), max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("窜货预警")
        verbose_name_plural = _("窜货预警")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["serial"], name="diversion_alert_one_per_bottle")]

    def __str__(self) -> str:
        return f"{self.dealer_id}: bottle {self.serial} @ {self.scan_region_code}"
