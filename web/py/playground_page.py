"""/playground: a chat that fills the window. Pick a model (a searchable list grouped by
provider, with prices), chat with it (streamed Markdown, multi-turn, system prompt, temperature,
max tokens, Stop), see each reply's tokens and cost under it and the budget left under the
composer, get the request as code. The conversation lives in localStorage, so a reload keeps
it. Logic: catalog, chat, picker, codegen (pure, tested under CPython); this file wires the page.
"""

import asyncio

import catalog
import chat
import chatstream
import chatview
import codegen
import dialect
import js
import money
import pagekit as kit
import pickerview
import richtext
import session
import settingspanel as settings
from pyscript.ffi import create_proxy

RENDER_EVERY_MS = 80  # re-render the streaming Markdown at most this often
ESTIMATE_POLLS = 8  # after Stop: look up the relay's recorded estimate this many times

config = kit.config()
state = chat.load_state(js.window.localStorage.getItem(chat.STORAGE_KEY))
page = {"profile": None, "stream": None, "busy": False}


def save() -> None:
    js.window.localStorage.setItem(chat.STORAGE_KEY, chat.dump_state(state))


# -- notices -------------------------------------------------------------------------------
def notice(text, href="", link="", kind="other") -> None:
    kit.set_text("notice-text", text)
    anchor = kit.node("notice-link")
    anchor.hidden = not href
    if href:
        anchor.href = href
        anchor.textContent = link
    box = kit.node("notice")
    box.dataset.kind = kind
    box.className = "notice " + ("warn-box" if kind in ("budget", "rate") else "error-box")
    box.hidden = False


def clear_notice() -> None:
    kit.hide("notice")


def show_failure(status, data) -> None:
    advice = chat.advice(status, data, session.error_message(status, data))
    notice(advice["text"], advice["href"], advice["link"], advice["kind"])


# -- models ----------------------------------------------------------------------------------
async def _skipped():
    return None, None


def _models_of(provider, token):
    """The provider's model list, asked only when this relay has that provider (no 503s)."""
    offered = config.get("providers")
    if offered is not None and provider not in offered:
        return _skipped()
    return kit.request_json("/" + provider + "/v1/models", token=token,
                            extra=dialect.headers(provider))


async def load_models(token) -> None:
    found = await asyncio.gather(kit.request_json("/prices"), _models_of("openai", token),
                                 _models_of("openrouter", token), _models_of("anthropic", token))
    (_p, prices), (o_status, openai), (r_status, openrouter), (a_status, claude) = found
    prices = prices if isinstance(prices, dict) else {}
    answers = ((o_status, openai), (r_status, openrouter), (a_status, claude))
    for refused in (401, 429):  # the relay refuses even model lists when spent (429)
        bodies = [data for status, data in answers if status == refused]
        if bodies:
            show_failure(refused, bodies[0])
            break
    models = []
    # A spent budget still shows what could be used: the relay's priced models.
    if o_status == 200:
        models += catalog.openai_models(openai, prices)
    elif o_status == 429:
        models += catalog.openai_models(catalog.price_listing(prices, "openai"), prices)
    if r_status == 200:
        models += catalog.openrouter_models(openrouter)
    if a_status == 200:
        models += catalog.anthropic_models(claude, prices)
    elif a_status == 429:
        models += catalog.anthropic_models(catalog.price_listing(prices, "anthropic"), prices)
    models = catalog.sort_models(models)
    if not models and 401 not in (o_status, r_status, a_status):
        notice("No models are available: this AI Pipe has no provider keys configured.")
    pickerview.set_models(models, state["model"])
    show_price(pickerview.selected())


def show_price(model) -> None:
    if model is None:
        kit.set_text("model-price", "")
        return
    # Claude's Messages API takes no temperature: say so rather than drop the setting silently.
    claude = not dialect.takes_temperature(model["provider"])
    kit.node("temperature").disabled = claude
    kit.node("temperature-note").hidden = not claude
    kit.set_text("model-price", catalog.PROVIDER_NAMES.get(model["provider"], "") + " · " +
                 catalog.price_text(model))


def on_model_chosen(model) -> None:
    if model:
        state["model"] = model["key"]
        save()
    show_price(model)
    refresh_code()
    kit.node("prompt").focus()


# -- the conversation -----------------------------------------------------------------------
def render_history() -> None:
    latest = None
    for message in state["messages"]:
        _article, bubble, line = chatview.message_element(
            message["role"], message["content"], message.get("meta"))
        if message["role"] == "assistant":
            latest = (bubble, line)
    if latest:
        chatview.mark_latest(latest[0], latest[1])
    chatview.scroll_down(force=True)


def new_chat(_event) -> None:
    if page["busy"]:
        return
    state["messages"] = []
    save()
    for element in kit.all_nodes("#messages article"):
        element.remove()
    kit.show("empty")
    clear_notice()
    refresh_code()
    kit.node("prompt").focus()


def set_busy(busy) -> None:
    page["busy"] = busy
    send_button, stop_button = kit.node("send"), kit.node("stop")
    send_button.disabled = busy
    send_button.hidden = busy
    stop_button.disabled = not busy
    stop_button.hidden = not busy
    if busy:
        stop_button.focus()
    else:
        kit.node("prompt").focus()


def on_setting(_event) -> None:
    state["system"] = str(kit.node("system").value)
    state["temperature"] = str(kit.node("temperature").value)
    state["max_tokens"] = str(kit.node("max-tokens").value)
    save()
    refresh_code()


# -- sending ---------------------------------------------------------------------------------
def on_prompt_key(event) -> None:
    if event.key == "Enter" and not event.shiftKey and not event.isComposing:
        event.preventDefault()
        kit.spawn(send())


def on_submit(event) -> None:
    event.preventDefault()
    kit.spawn(send())


def current_request(prompt=None, for_code=False):
    """(model, body pairs, error) for the conversation so far plus `prompt`."""
    model = pickerview.selected()
    if model is None:
        return None, None, "Pick a model first."
    temp, limit, error = chat.parse_settings(kit.node("temperature").value,
                                             kit.node("max-tokens").value)
    if error:
        return None, None, error
    messages = chat.code_messages(state, prompt) if for_code else \
        chat.request_messages(state, prompt)
    return model, dialect.request_body(model["provider"], model["id"], messages, temp, limit), \
        None


async def send() -> None:
    prompt = str(kit.node("prompt").value).strip()
    if page["busy"] or not prompt:
        return
    model, body, error = current_request(prompt)
    if error:
        notice(error)
        return
    clear_notice()
    kit.set_text("chat-status", "Waiting for the reply…")
    state["messages"].append({"role": "user", "content": prompt, "meta": {}})
    kit.node("prompt").value = ""
    user_article, _b, _l = chatview.message_element("user", prompt)
    article, bubble, line = chatview.message_element("assistant", "")
    bubble.classList.add("streaming")
    chatview.mark_latest(bubble, line)
    chatview.scroll_down(force=True)
    set_busy(True)
    started = str(js.Date.new().toISOString())[:19]
    try:
        await stream_reply(model, body, prompt, user_article, article, bubble, line, started)
    finally:
        set_busy(False)
        page["stream"] = None
        refresh_code()


async def stream_reply(model, body, prompt, user_article, article, bubble, line, started):
    stream = chatstream.ChatStream()
    page["stream"] = stream
    status, data = await stream.open(catalog.CHAT_PATHS[model["provider"]],
                                     page["profile"]["token"], chat.body_json(body),
                                     dialect.headers(model["provider"]))
    if status != 200:
        undo_turn(prompt, user_article, article)
        if not stream.aborted:
            show_failure(status, data)
        return

    def progress(reply):
        if reply.text:
            richtext.render(bubble, reply.text, final=False)
            chatview.scroll_down()

    reply, stopped, failure = await stream.read(dialect.new_reply(model["provider"]), progress,
                                                RENDER_EVERY_MS)
    finish(model, reply, stopped, failure, bubble, line, started)
    kit.spawn(show_budget(page["profile"]["token"]))


def finish(model, reply, stopped, failure, bubble, line, started) -> None:
    bubble.classList.remove("streaming")
    richtext.render(bubble, reply.text)
    if reply.usage:
        pico, source = catalog.reply_cost(model, reply.usage)
        cost = money.usd(pico)
    elif stopped:
        cost, source = "estimating…", "pending"
    else:
        cost, source = "—", "unknown"
    meta = chat.reply_meta(model["id"], reply.usage, cost, source, stopped)
    state["messages"].append({"role": "assistant", "content": reply.text, "meta": meta})
    save()
    chatview.show_meta(line, meta)
    # Screen readers hear that the reply is complete once, not every streamed word.
    kit.set_text("chat-status", ("Reply stopped. " if stopped else "Reply complete. ") +
                 chat.meta_text(meta, catalog.usage_tokens(reply.usage)))
    if reply.error or failure:
        notice("The reply broke off: " + (reply.error or failure) + ". Send again to retry.")
    if stopped:
        kit.spawn(recorded_cost(meta, line, started))
    chatview.scroll_down()


async def recorded_cost(meta, line, started) -> None:
    """A stopped stream reports no usage: show the estimate the relay recorded for it."""
    for _ in range(ESTIMATE_POLLS):
        await asyncio.sleep(0.4)
        code, data = await kit.request_json("/usage/requests?limit=5",
                                            token=page["profile"]["token"])
        row = chat.recorded_row(data if code == 200 else None, meta["model"], started)
        if row is not None:
            meta["cost"] = money.usd(money.scaled(row.get("cost"), 12))
            meta["source"] = row.get("cost_source") or "estimated"
            break
    else:
        meta["cost"], meta["source"] = "—", "unknown"
    save()
    chatview.show_meta(line, meta)


def undo_turn(prompt, user_article, article) -> None:
    """A refused request is not part of the conversation: give the prompt back to edit."""
    if state["messages"] and state["messages"][-1]["role"] == "user":
        state["messages"].pop()
    save()
    user_article.remove()
    article.remove()
    kit.node("prompt").value = prompt
    if not state["messages"]:
        kit.show("empty")
    else:  # the previous reply is the latest again
        bubbles = kit.all_nodes(".msg.assistant .bubble")
        if bubbles:
            last = bubbles[-1]
            chatview.mark_latest(last, last.parentElement.querySelector(".meta"))


def stop(_event) -> None:
    if page["stream"] is not None:
        page["stream"].stop()


def suggestion(event) -> None:
    button = event.target.closest("[data-prompt]")
    if button:
        prompt = kit.node("prompt")
        prompt.value = str(button.dataset.prompt)
        prompt.focus()
        refresh_code()


# -- keys and the code dialog ---------------------------------------------------------------
def on_key(event) -> None:
    key = str(event.key)
    if key == "Escape" and settings.narrow() and settings.is_open() and not pickerview.is_open():
        settings.set_open(False)
        kit.node("settings-toggle").focus()
    elif key.lower() == "k" and (event.ctrlKey or event.metaKey):
        event.preventDefault()
        pickerview.open_list()


def show_code(_event) -> None:
    kit.node("code-panel").showModal()
    refresh_code()


def refresh_code() -> None:
    if not kit.node("code-panel").open:
        return
    prompt = str(kit.node("prompt").value).strip()
    model, body, error = current_request(prompt, for_code=True)
    if error:
        kit.set_text("code-snippets", error)
        return
    path = catalog.CHAT_PATHS[model["provider"]]
    kit.render_snippets("code-snippets", codegen.all_code(kit.origin(), model["provider"], path,
                                                          body), "Languages")
    kit.node("open-scratchpad").href = codegen.scratchpad_link(body)


# -- start -----------------------------------------------------------------------------------
def clean_address() -> None:
    """A sign-in hand-off leaves aipipe_* parameters in the URL: the token is in storage now."""
    location = js.window.location
    if "aipipe_" in str(location.hash) or "aipipe_" in str(location.search):
        js.window.history.replaceState(None, "", str(location.pathname))


async def show_budget(token) -> None:
    code, data = await kit.request_json("/usage", token=token)
    if code == 200 and isinstance(data, dict):
        kit.note_usage(page["profile"], data)
        summary = money.spend_summary(data)
        kit.set_text("budget-left", summary["remaining"] + " of " + summary["limit"] + " left")
        kit.show_meter("budget-meter", summary["percent"], summary["exhausted"],
                       summary["spent"] != "$0.00")
    elif code == 401:
        kit.set_text("budget-left", "Signed out")
        show_failure(code, data)


def wire() -> None:
    pickerview.start(on_model_chosen)
    kit.on("composer", "submit", on_submit)
    kit.on("prompt", "keydown", on_prompt_key)
    kit.on("prompt", "input", lambda _e: refresh_code())
    kit.on("stop", "click", stop)
    kit.on("new-chat", "click", new_chat)
    kit.on("show-code", "click", show_code)
    kit.on("code-close", "click", lambda _e: kit.node("code-panel").close())
    settings.start()
    kit.on("suggestions", "click", suggestion)
    for name in ("system", "temperature", "max-tokens"):
        kit.on(name, "input", on_setting)
    js.document.addEventListener("keydown", create_proxy(on_key))


async def main() -> None:
    clean_address()
    profile = kit.load_profile()
    kit.start_header(profile)
    if profile is None:
        kit.show("signin-needed")
        kit.hide("play")
        kit.mark_ready()
        return
    page["profile"] = profile
    kit.node("system").value = state["system"]
    kit.node("temperature").value = state["temperature"]
    kit.node("max-tokens").value = state["max_tokens"]
    render_history()
    wire()
    try:
        await asyncio.gather(load_models(profile["token"]), show_budget(profile["token"]))
    finally:
        kit.mark_ready()


kit.spawn(main())
