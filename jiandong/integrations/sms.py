"""placeholder"""
from aiohttp import web


async def sms_ctx(app: web.Application):
    yield
