"""Machine-readable codes of the refusals in commerce/ (messages are Simplified Chinese)."""

from __future__ import annotations

from enum import StrEnum


class ChannelErrorCode(StrEnum):
    INVALID_DEALER = "invalid_dealer"  # a field of a dealer is missing or malformed
    DEALER_CODE_TAKEN = "dealer_code_taken"
    DEALER_NOT_FOUND = "dealer_not_found"
    UNKNOWN_DEALER = "unknown_dealer"  # named in a request body
    DEALER_SUSPENDED = "dealer_suspended"
    DEALER_IN_USE = "dealer_in_use"
    PARENT_REQUIRED = "parent_dealer_required"
    PARENT_NOT_ALLOWED = "parent_dealer_not_allowed"
    UNKNOWN_PARENT = "unknown_parent_dealer"
    PARENT_IS_SECOND_LEVEL = "parent_dealer_is_second_level"
    PARENT_SUSPENDED = "parent_dealer_suspended"
    HAS_SUB_DEALERS = "dealer_has_sub_dealers"
    UNKNOWN_REGION = "unknown_region"
    OVERLAPPING_AREAS = "overlapping_areas"
    TOO_MANY_AREAS = "too_many_areas"
    AREA_OUTSIDE_PARENT = "area_outside_parent_dealer"
    AREAS_EXCLUDE_DEPENDENTS = "areas_exclude_stores_or_sub_dealers"
    INVALID_STORE = "invalid_store"
    STORE_CODE_TAKEN = "store_code_taken"
    STORE_NOT_FOUND = "store_not_found"
    UNKNOWN_STORE = "unknown_store"
    STORE_SUSPENDED = "store_suspended"
    STORE_IN_USE = "store_in_use"
    STORE_REGION_TOO_COARSE = "store_region_too_coarse"
    STORE_OUTSIDE_DEALER_AREA = "store_outside_dealer_area"
    STORE_QUOTA = "store_quota_exceeded"
    INVALID_PHONE = "invalid_phone"
    INVALID_CHANNEL_ROLE = "invalid_channel_role"
    EMPLOYER_MISMATCH = "channel_staff_employer_mismatch"
    INVALID_USERNAME = "invalid_username"
    USERNAME_TAKEN = "username_taken"
    PHONE_TAKEN = "phone_taken"
    INVALID_PASSWORD = "invalid_password"  # noqa: S105 (an error code)
    STAFF_NOT_FOUND = "channel_staff_not_found"


class MemberErrorCode(StrEnum):
    NO_BRAND = "no_brand"
    MEMBER_NOT_FOUND = "member_not_found"
    MEMBER_ERASED = "member_erased"
    INVALID_PHONE = "invalid_phone"
    INVALID_CONSENT = "invalid_consent"
    INVALID_IDENTITY = "invalid_identity"


class PointsErrorCode(StrEnum):
    INVALID_AMOUNT = "invalid_points_amount"
    INVALID_SOURCE = "invalid_points_source"
    INSUFFICIENT = "insufficient_points"
    SOURCE_REUSED = "points_source_reused"  # the same source with a different amount or kind
