"""What the bot says on its own: the FAQ (admins) and canned staff replies (all staff).

FAQ entries are checked by the FAQ file importer's own rules (``bot.faq_file``) and written
to the table the bot's FaqService searches, so a saved entry answers customers at once.
Canned replies are the ones ``/canned`` uses in the staff chat: the same table, the same
checks (``bot.canned``), and replies written here win over ``[tickets.canned]`` in
config.toml, exactly as ones added with ``/canned add`` do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from bot.canned import (
    CANNED_NAME,
    CANNED_VARIABLES,
    MAX_CANNED_LENGTH,
    CannedError,
    check_canned,
    render_canned,
)
from bot.config import SUPPORTED_LANGUAGES
from bot.faq_file import MAX_ANSWER, FaqProblem, faq_entry
from bot.models import FaqEntry
from carebot.dashboard.app import (
    Form,
    Routes,
    account_of,
    dashboard_of,
    flash,
    form_of,
    int_param,
    render_page,
    see_other,
    text_field,
)
from handlers.ticket_actions import canned_replies
from storage.repositories import FaqSlugTaken

# ------------------------------------------------------------------ FAQ

FAQ_FIELDS = ("slug", "lang", "question", "keywords", "answer")


@dataclass
class FaqDraft:
    """The FAQ form as typed (kept as typed when it is refused)."""

    slug: str = ""
    lang: str = "en"
    question: str = ""
    keywords: str = ""
    answer: str = ""

    @classmethod
    def from_form(cls, form: Form) -> FaqDraft:
        return cls(**{name: text_field(form, name) for name in FAQ_FIELDS})

    @classmethod
    def from_entry(cls, entry: FaqEntry) -> FaqDraft:
        return cls(entry.slug, entry.lang, entry.question, entry.keywords, entry.answer)


def check_faq(draft: FaqDraft) -> FaqEntry:
    """The entry, checked by the FAQ file importer's rules. Raises FaqProblem."""
    translation = {"question": draft.question, "keywords": draft.keywords, "answer": draft.answer}
    return faq_entry(draft.slug, draft.lang, translation)


def _faq_form(
    request: web.Request,
    draft: FaqDraft,
    *,
    entry_id: int | None,
    errors: dict[str, str] | None = None,
    existing: FaqEntry | None = None,
    status: int = 200,
) -> web.Response:
    return render_page(
        request,
        "faq/edit.html",
        status=status,
        draft=draft,
        entry_id=entry_id,
        errors=errors or {},
        existing=existing,
        languages=SUPPORTED_LANGUAGES,
        max_answer=MAX_ANSWER,
    )


def _refused(
    request: web.Request,
    draft: FaqDraft,
    entry_id: int | None,
    error: FaqProblem | FaqSlugTaken,
) -> web.Response:
    """The form again as typed, with what is wrong beside its field."""
    if isinstance(error, FaqSlugTaken):
        errors = {"slug": f"{error}; edit that one, or pick another slug or language"}
        return _faq_form(
            request, draft, entry_id=entry_id, errors=errors, existing=error.entry, status=400
        )
    errors = {error.field_name: str(error)}
    return _faq_form(request, draft, entry_id=entry_id, errors=errors, status=400)


async def faq_list(request: web.Request) -> web.StreamResponse:
    """Every FAQ entry, per slug and language, with what customers said of its answers."""
    faq = dashboard_of(request).repos.faq
    entries = faq.all()
    languages_of: dict[str, set[str]] = {}
    for entry in entries:
        languages_of.setdefault(entry.slug, set()).add(entry.lang)
    missing = {
        slug: [lang for lang in SUPPORTED_LANGUAGES if lang not in langs]
        for slug, langs in languages_of.items()
    }
    return render_page(
        request, "faq/list.html", entries=entries, feedback=faq.feedback_counts(), missing=missing
    )


async def faq_new(request: web.Request) -> web.StreamResponse:
    """An empty FAQ form (or a translation of an entry: ?slug=...&lang=...)."""
    lang = request.query.get("lang", "en")
    draft = FaqDraft(
        slug=request.query.get("slug", "")[:48],
        lang=lang if lang in SUPPORTED_LANGUAGES else "en",
    )
    return _faq_form(request, draft, entry_id=None)


async def faq_create(request: web.Request) -> web.StreamResponse:
    """Add an entry; the bot answers with it from now on."""
    dashboard = dashboard_of(request)
    draft = FaqDraft.from_form(await form_of(request))
    try:
        entry = check_faq(draft)
        dashboard.repos.faq.add(entry, dashboard.now())
    except (FaqProblem, FaqSlugTaken) as error:
        return _refused(request, draft, None, error)
    dashboard.audit(request, "faq added", f"{entry.slug} ({entry.lang})")
    flash(request, f"FAQ entry {entry.slug} ({entry.lang}) added: the bot answers with it now.")
    raise see_other("/admin/faq")


def _entry(request: web.Request) -> FaqEntry:
    entry = dashboard_of(request).repos.faq.get_by_id(int_param(request, "entry_id"))
    if entry is None:
        raise web.HTTPNotFound(text="No such FAQ entry (it may have been deleted).")
    return entry


async def faq_edit(request: web.Request) -> web.StreamResponse:
    """The form for one entry."""
    entry = _entry(request)
    return _faq_form(request, FaqDraft.from_entry(entry), entry_id=entry.id)


async def faq_update(request: web.Request) -> web.StreamResponse:
    """Save an entry (its slug and language may change too)."""
    dashboard, current = dashboard_of(request), _entry(request)
    draft = FaqDraft.from_form(await form_of(request))
    try:
        entry = check_faq(draft)
        saved = dashboard.repos.faq.replace(current.id, entry, dashboard.now())
    except (FaqProblem, FaqSlugTaken) as error:
        return _refused(request, draft, current.id, error)
    if not saved:
        raise web.HTTPNotFound(text="No such FAQ entry (it may have been deleted).")
    was = f"{current.slug} ({current.lang})"
    now = f"{entry.slug} ({entry.lang})"
    dashboard.audit(request, "faq saved", now if was == now else f"{was} -> {now}")
    flash(request, f"FAQ entry {now} saved: the bot answers with it now.")
    raise see_other("/admin/faq")


async def faq_delete(request: web.Request) -> web.StreamResponse:
    """Delete an entry, once the confirm box is ticked."""
    dashboard, entry = dashboard_of(request), _entry(request)
    if text_field(await form_of(request), "confirm") != "yes":
        errors = {"confirm": "tick “Yes, delete this entry” to delete it"}
        return _faq_form(
            request, FaqDraft.from_entry(entry), entry_id=entry.id, errors=errors, status=400
        )
    dashboard.repos.faq.delete(entry.id)
    dashboard.audit(request, "faq deleted", f"{entry.slug} ({entry.lang})")
    flash(request, f"FAQ entry {entry.slug} ({entry.lang}) deleted.")
    raise see_other("/admin/faq")


# ------------------------------------------------------------------ canned replies


@dataclass(frozen=True)
class CannedRow:
    """A reply as /canned sees it, and where it comes from."""

    name: str
    body: str
    stored: bool
    config_body: str | None  # the config.toml text (overridden when ``stored``)
    preview: str
    problem: str | None


@dataclass
class CannedDraft:
    name: str = ""
    body: str = ""
    editing: bool = False  # the name is fixed when editing (rename = add a new one)
    errors: dict[str, str] = field(default_factory=dict)


def sample_values(request: web.Request) -> dict[str, str]:
    """Stand-ins for a real ticket, to preview a reply."""
    return {
        "name": "Ann",
        "full_name": "Ann Peeters",
        "order": "536012",
        "ticket": "42",
        "shop": dashboard_of(request).config.shop.name,
        "agent": account_of(request).display_name.split(" ")[0],
    }


def _preview(body: str, values: dict[str, str]) -> tuple[str, str | None]:
    try:
        return render_canned(body, values), None
    except CannedError as exc:
        return "", str(exc)


def canned_rows(request: web.Request) -> list[CannedRow]:
    deps = dashboard_of(request).deps
    configured = deps.config.tickets.canned.as_dict()
    stored = deps.desk.canned.all()
    values = sample_values(request)
    rows = []
    for name, body in canned_replies(deps).items():
        preview, problem = _preview(body, values)
        rows.append(CannedRow(name, body, name in stored, configured.get(name), preview, problem))
    return rows


def _canned_form(
    request: web.Request, draft: CannedDraft, *, preview: str | None = None, status: int = 200
) -> web.Response:
    configured = dashboard_of(request).config.tickets.canned.as_dict()
    stored = dashboard_of(request).deps.desk.canned.all()
    return render_page(
        request,
        "canned/edit.html",
        status=status,
        draft=draft,
        preview=preview,
        config_body=configured.get(draft.name),
        is_stored=draft.name in stored,
        variables=CANNED_VARIABLES,
        samples=sample_values(request),
        max_length=MAX_CANNED_LENGTH,
    )


def _canned_name(request: web.Request) -> str:
    name = request.match_info.get("name", "")
    if not CANNED_NAME.match(name):
        raise web.HTTPNotFound(text="No such canned reply.")
    return name


async def canned_list(request: web.Request) -> web.StreamResponse:
    """Every reply /canned can send: written here or in Telegram, and config.toml's."""
    return render_page(
        request, "canned/list.html", rows=canned_rows(request), variables=CANNED_VARIABLES
    )


async def canned_new(request: web.Request) -> web.StreamResponse:
    """An empty reply form."""
    return _canned_form(request, CannedDraft())


async def canned_edit(request: web.Request) -> web.StreamResponse:
    """The form for one reply (a config.toml one is overridden when saved)."""
    name = _canned_name(request)
    replies = canned_replies(dashboard_of(request).deps)
    if name not in replies:
        raise web.HTTPNotFound(text="No such canned reply.")
    draft = CannedDraft(name, replies[name], editing=True)
    return _canned_form(request, draft, preview=_preview(draft.body, sample_values(request))[0])


async def canned_save(request: web.Request) -> web.StreamResponse:
    """Preview or save a reply (the checks /canned add makes)."""
    dashboard, form = dashboard_of(request), await form_of(request)
    draft = CannedDraft(
        name=text_field(form, "name").lower(),
        body=text_field(form, "body"),
        editing=text_field(form, "editing") == "yes",
    )
    try:
        check_canned(draft.name, draft.body)
    except CannedError as exc:
        draft.errors["name" if not CANNED_NAME.match(draft.name) else "body"] = str(exc)
        return _canned_form(request, draft, status=400)
    stored = dashboard.deps.desk.canned.all()
    if not draft.editing and draft.name in stored:
        draft.errors["name"] = f"there is already a reply called {draft.name}; edit that one"
        return _canned_form(request, draft, status=400)
    preview = render_canned(draft.body, sample_values(request))
    if text_field(form, "action") == "preview":
        return _canned_form(request, draft, preview=preview)
    account = account_of(request)
    # updated_by holds a Telegram user id, as /canned add stores it.
    dashboard.deps.desk.canned.save(
        draft.name, draft.body, account.telegram_user_id, dashboard.now()
    )
    dashboard.audit(request, "canned saved", draft.name)
    flash(request, f"Canned reply {draft.name} saved: /canned {draft.name} sends it.")
    raise see_other("/admin/canned")


async def canned_delete(request: web.Request) -> web.StreamResponse:
    """Delete a reply written here or with /canned add (config.toml ones stay)."""
    dashboard, name = dashboard_of(request), _canned_name(request)
    configured = dashboard.config.tickets.canned.as_dict()
    stored = dashboard.deps.desk.canned.all()
    if name not in stored:
        if name in configured:
            raise web.HTTPBadRequest(
                text=f"{name} comes from config.toml ([tickets.canned]); remove it there."
            )
        raise web.HTTPNotFound(text="No such canned reply.")
    if text_field(await form_of(request), "confirm") != "yes":
        draft = CannedDraft(name, stored[name], editing=True)
        draft.errors["confirm"] = "tick “Yes, delete this reply” to delete it"
        return _canned_form(request, draft, status=400)
    dashboard.deps.desk.canned.delete(name)
    dashboard.audit(request, "canned deleted", name)
    back = "; the config.toml text is used again" if name in configured else ""
    flash(request, f"Canned reply {name} deleted{back}.")
    raise see_other("/admin/canned")


def register(routes: Routes) -> None:
    routes.get("/faq", faq_list, access="admin")
    routes.get("/faq/new", faq_new, access="admin")
    routes.post("/faq/new", faq_create, access="admin")
    routes.get("/faq/{entry_id}/edit", faq_edit, access="admin")
    routes.post("/faq/{entry_id}/edit", faq_update, access="admin")
    routes.post("/faq/{entry_id}/delete", faq_delete, access="admin")
    routes.get("/canned", canned_list)
    routes.get("/canned/new", canned_new)
    routes.post("/canned", canned_save)
    routes.get("/canned/{name}/edit", canned_edit)
    routes.post("/canned/{name}/delete", canned_delete)
