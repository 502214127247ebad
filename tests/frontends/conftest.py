"""Fixtures of the consumer page tests: the WeChat simulator and a brand configured against it."""

from tests.support.wechat import alpha_pay, alpha_wechat, wechat_sim  # noqa: F401 (fixtures)
