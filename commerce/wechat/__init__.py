"""Adapters to WeChat: web OAuth (who the consumer is) and WeChat Pay APIv3 (money).

Each is an interface with one real implementation over a maintained library (wechatpy for OAuth,
wechatpayv3 for Pay); the base URLs come from settings, so the demo and the tests run the very same
code against the local simulator (platform/local/wechat_simulator.py).
"""
