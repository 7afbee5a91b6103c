"""The shape every content section shares: a list, a create form, an edit form, publish / unpublish, delete.

A section (competitions.py, teams.py, ...) says which form, which columns and which service calls;
this module turns that into the routes, so each section holds only what is its own.
"""

from __future__ import annotations

import typing

import wtforms
from aiohttp import web
from aiohttp_session import get_session

from ..keys import pg_key
from ..services import audit
from ..services.admins import EDITOR
from ..services.editing import InUse, Invalid, ListQuery, NotFound
from ..services.files import StoredFile
from .errors import PageError
from .forms import AdminForm, FormData, Upload, add_error, club_meta, read_form
from .inputs import path_id
from .render import PREFIX, Column, ListPage, flash, list_query, redirect, render
from .security import actor, requires
from .uploads import image_fields, keep_image, kept_image, kept_name, store_image

Row = dict[str, typing.Any]


class Section:
    slug = ""  # the URL: /admin/<slug>
    title = ""  # the menu's word: 赛事
    noun = ""  # one item: 赛事
    roles: tuple[str, ...] = (EDITOR,)
    form_class: type[AdminForm] = AdminForm
    columns: list[Column] = []
    sorts: tuple[str, ...] = ()
    # Labels of the on / off actions (发布 / 下架, 启用 / 停用); None: the section has no such switch.
    switch: tuple[str, str] | None = ("发布", "下架")
    state_labels = ("已发布", "未发布")
    can_delete = True
    edit_template = "admin/edit.html"
    list_template = "admin/list.html"
    search_hint = "搜索"
    multipart = False
    id_pattern = r"[0-9]+"

    # -- what each section provides ---------------------------------------------------------------
    async def list_rows(self, app: web.Application, query: ListQuery) -> tuple[list[Row], int]:
        raise NotImplementedError

    async def get_row(self, app: web.Application, ident: int) -> Row | None:
        raise NotImplementedError

    async def create(self, request: web.Request, form: typing.Any) -> int:
        """Store a new item; an image field's data is its StoredFile (stored already) or None."""
        raise NotImplementedError

    async def update(self, request: web.Request, ident: int, form: typing.Any, row: Row) -> None:
        raise NotImplementedError

    async def switch_on(self, app: web.Application, ident: int, on: bool) -> None:
        raise NotImplementedError

    async def delete(self, app: web.Application, ident: int) -> None:
        raise NotImplementedError

    # The form's image field and the row's column that holds the stored image's URL.
    image: tuple[str, str] | None = None

    def form_data(self, row: Row) -> dict[str, typing.Any]:
        """The edit form's values from the stored row (by default: the row's columns of the same names)."""
        return dict(row)

    async def prepare(self, request: web.Request, form: typing.Any, row: Row | None) -> None:
        """Fill choices, set the time zone and anything else the form needs before it is shown or checked."""

    async def check(self, request: web.Request, form: typing.Any) -> list[tuple[str, str]]:
        """(field, problem) that only stored data can tell (an unknown user): checked beside the form's own
        rules, so a refused save names every problem at once rather than one per try."""
        return []

    async def extra(self, request: web.Request, row: Row | None) -> dict[str, typing.Any]:
        """More for the edit page (team members, stream URLs ...)."""
        return {}

    def is_on(self, row: Row) -> bool:
        return bool(row.get("status"))

    # -- the routes ---------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"{PREFIX}/{self.slug}"

    def ident(self, request: web.Request) -> typing.Any:
        return path_id(request)

    async def load(self, request: web.Request) -> tuple[int, Row]:
        ident = self.ident(request)
        row = await self.get_row(request.config_dict, ident)
        if row is None:
            raise PageError(404, f"{self.noun}不存在")
        return ident, row

    async def make_form(self, request: web.Request, row: Row | None, formdata: typing.Any = None) -> typing.Any:
        form = self.form_class(formdata, data=self.form_data(row) if row is not None and formdata is None else None,
                               meta=club_meta(request))
        await self.prepare(request, form, row)
        return form

    async def show_form(self, request: web.Request, form: typing.Any, row: Row | None, status: int = 200
                        ) -> web.Response:
        image_field = self.image and (self.image[0], row and row[self.image[1]])
        context = {"section": self, "form": form, "row": row, "image_field": image_field,
                   **await self.extra(request, row)}
        return await render(request, self.edit_template, context, status)

    async def list_page(self, request: web.Request) -> web.Response:
        query = list_query(request, self.sorts)
        rows, total = await self.list_rows(request.config_dict, query)
        page = ListPage(rows, total, query, self.columns, self.base)
        return await render(request, self.list_template, {"section": self, "page": page})

    async def new_page(self, request: web.Request) -> web.Response:
        return await self.show_form(request, await self.make_form(request, None), None)

    @property
    def upload_folder(self) -> str:
        """Where the section's images are stored under the media dir."""
        return self.slug

    async def checked_form(self, request: web.Request, row: Row | None) -> tuple[typing.Any, bool]:
        """The posted form, validated, its images checked and stored: (form, whether it may be saved).

        An image accepted now, or kept from a refused try (its token in `<field>__kept`), becomes the field's
        data as a StoredFile and is offered again if the save is refused, so it need not be chosen again.
        """
        formdata = await read_form(request)
        form = await self.make_form(request, row, formdata)
        problems = await self.take_images(request, form, formdata)
        valid = form.validate()
        problems += await self.check(request, form)
        # After validate(): it resets every field's errors.
        for name, message in problems:
            add_error(form, name, message)
        return form, valid and not problems

    async def take_images(self, request: web.Request, form: typing.Any, formdata: FormData) -> list[tuple[str, str]]:
        problems = []
        for field in image_fields(form):
            stored: StoredFile | None
            if isinstance(field.data, Upload):
                try:
                    stored = await store_image(request, field.data, self.upload_folder, field.name)
                except Invalid as exc:
                    problems.append((field.name, str(exc)))
                    stored = None
            else:
                stored = await kept_image(request, formdata.get(kept_name(field.name)), field.name,
                                          self.upload_folder)
            field.data = stored
            # What the field's macro shows (已上传 … 保留) and sends back.
            field.kept = await keep_image(request, field.name, stored) if stored else None
        return problems

    async def create_action(self, request: web.Request) -> web.Response:
        form, valid = await self.checked_form(request, None)
        if valid:
            try:
                ident = await self.create(request, form)
            except Invalid as exc:
                add_error(form, exc.field, str(exc))
            else:
                await self.record(request, "create", ident, None, self.audited(form, None))
                flash(await get_session(request), f"{self.noun}已创建")
                raise web.HTTPFound(f"{self.base}/{ident}")
        return await self.show_form(request, form, None, status=400)

    async def edit_page(self, request: web.Request) -> web.Response:
        _, row = await self.load(request)
        return await self.show_form(request, await self.make_form(request, row), row)

    async def update_action(self, request: web.Request) -> web.Response:
        ident, row = await self.load(request)
        form, valid = await self.checked_form(request, row)
        if valid:
            try:
                await self.update(request, ident, form, row)
            except Invalid as exc:
                add_error(form, exc.field, str(exc))
            except NotFound:
                raise PageError(404, f"{self.noun}不存在") from None
            else:
                # Both sides in the form's terms (a price in yuan, a flag as yes/no, an image by its field):
                # the log compares like with like and shows only what changed.
                before = self.audited(await self.make_form(request, row), row)
                await self.record(request, "update", ident, before, self.audited(form, row))
                flash(await get_session(request), "已保存")
                raise web.HTTPFound(f"{self.base}/{ident}")
        return await self.show_form(request, form, row, status=400)

    def audited(self, form: wtforms.Form, row: Row | None) -> dict[str, typing.Any]:
        """A form's values for the audit log; an image field left empty keeps the row's stored image."""
        values = submitted(form)
        if self.image is not None and values.get(self.image[0]) is None and row is not None:
            values[self.image[0]] = row[self.image[1]] or None
        return values

    async def switch_action(self, request: web.Request, on: bool) -> web.Response:
        ident = self.ident(request)
        try:
            await self.switch_on(request.config_dict, ident, on)
        except NotFound:
            raise PageError(404, f"{self.noun}不存在") from None
        await self.record(request, "on" if on else "off", ident, None, None,
                          await self.get_row(request.config_dict, ident))
        assert self.switch is not None
        flash(await get_session(request), f"已{self.switch[0 if on else 1]}")
        raise web.HTTPFound(await self._back(request, ident))

    async def delete_action(self, request: web.Request) -> web.Response:
        ident = self.ident(request)
        row = await self.get_row(request.config_dict, ident)
        # In the form's terms, as an edit records it (no computed columns, flags as yes / no).
        before = self.audited(await self.make_form(request, row), row) if row is not None else None
        try:
            await self.delete(request.config_dict, ident)
        except NotFound:
            raise PageError(404, f"{self.noun}不存在") from None
        except InUse as exc:
            # Refused, and why: the row stays as it was.
            flash(await get_session(request), f"不能删除：{exc}", refused=True,
                  todo="请先处理这些关联内容后再删除" + (f"，或改为{self.switch[1]}" if self.switch else "") + "。")
            raise web.HTTPFound(f"{self.base}/{ident}") from None
        await self.record(request, "delete", ident, before, None)
        flash(await get_session(request), f"{self.noun}已删除")
        raise redirect(f"/{self.slug}")

    async def record(self, request: web.Request, what: str, ident: typing.Any, before: typing.Any,
                     after: typing.Any, row: Row | None = None) -> None:
        """The change in the audit log: `<slug>.<what>` on `<slug>:<id>`, summed up as the noun and the item's
        name (from after, before or the row: the list of entries says which match or team it was)."""
        name = next((str(values[key]) for values in (after, before, row) if isinstance(values, typing.Mapping)
                     for key in NAME_FIELDS if values.get(key)), "")
        summary = f"{self.noun}「{name if len(name) <= 50 else name[:50] + '…'}」" if name else self.noun
        await audit.record_now(request.config_dict[pg_key], actor(request), f"{self.slug}.{what}",
                               f"{self.slug}:{ident}", summary, before=before, after=after)

    async def _back(self, request: web.Request, ident: int) -> str:
        """Where a switch returns to: the list it was pressed in, else the item's page."""
        back_to_list = (await read_form(request)).get("back") == "list"
        return self.base if back_to_list else f"{self.base}/{ident}"

    def add_routes(self, routes: web.RouteTableDef) -> None:
        guard = requires(*self.roles)
        base = f"/{self.slug}"

        def handler(method: typing.Callable[..., typing.Awaitable[web.StreamResponse]],
                    *args: typing.Any) -> typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]:
            async def handle(request: web.Request) -> web.StreamResponse:
                return await method(request, *args)

            handle.__name__ = f"{self.slug}_{method.__name__}"
            return guard(handle)

        routes.get(base)(handler(self.list_page))
        routes.get(f"{base}/new")(handler(self.new_page))
        routes.post(f"{base}/new")(handler(self.create_action))
        item = f"{base}/{{id:{self.id_pattern}}}"
        routes.get(item)(handler(self.edit_page))
        routes.post(item)(handler(self.update_action))
        if self.switch is not None:
            routes.post(f"{item}/on")(handler(self.switch_action, True))
            routes.post(f"{item}/off")(handler(self.switch_action, False))
        if self.can_delete:
            routes.post(f"{item}/delete")(handler(self.delete_action))


# The fields that name an item, first found first (a match's title, a team's name, a card's player, a code).
NAME_FIELDS = ("title", "name", "cn_name", "code")


def choice_list(pairs: typing.Iterable[tuple[typing.Any, str]], blank: str | None = None) -> dict[typing.Any, str]:
    """Choices for a select, as WTForms takes them ({value: label}); `blank` labels the choice of none (None)."""
    return {**({None: blank} if blank is not None else {}), **dict(pairs)}


def submitted(form: wtforms.Form) -> dict[str, typing.Any]:
    """What a form sent, for the audit log: files by their names (a stored image by its URL), no CSRF token."""
    return {field.name: field.data.url if isinstance(field.data, StoredFile) else getattr(field.data, "filename",
                                                                                          field.data)
            for field in form if field.name != "csrf_token"}


def field_values(form: wtforms.Form, names: typing.Iterable[str]) -> dict[str, typing.Any]:
    return {name: getattr(form, name).data for name in names}
