"""/playground: pick a model (searchable, priced), chat with it (streamed, multi-turn, system
prompt, temperature, max tokens, stop), see each reply's tokens and cost, get the request as
code. The conversation lives in localStorage, so a reload keeps it. Logic: catalog, chat,
codegen (pure, tested under CPython); this file only wires the page."""

import asyncio

import catalog
import chat
import chatstream
import chatview
import codegen
import js
import money
import pagekit as kit
import richtext
import session

RENDER_EVERY_MS = 60  # re-render the streaming Markdown at most this often
ESTIMATE_POLLS = 8  # after Stop: look up the relay's recorded estimate this many times

state = chat.load_state(js.window.localStorage.getItem(chat.STORAGE_KEY))
page = {"profile": None, "models": [], "stream": None, "busy": False}


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
    box.hidden = False


def clear_notice() -> None:
    kit.hide("notice")


def show_failure(status, data) -> None:
    advice = chat.advice(status, data, session.error_message(status, data))
    notice(advice["text"], advice["href"], advice["link"], advice["kind"])


# -- models ----------------------------------------------------------------------------------
async def load_models(token) -> None:
    found = await asyncio.gather(
        kit.request_json("/prices"),
        kit.request_json("/openai/v1/models", token=token),
        kit.request_json("/openrouter/v1/models", token=token),
    )
    (_p, prices), (o_status, openai), (r_status, openrouter) = found
    prices = prices if isinstance(prices, dict) else {}
    if o_status == 401 or r_status == 401:
        show_failure(401, openai if o_status == 401 else openrouter)
    elif o_status == 429 or r_status == 429:  # the relay refuses even model lists when spent
        show_failure(429, openai if o_status == 429 else openrouter)
    models = []
    if o_status == 200:  # a provider without a key answers 503: skip it
        models += catalog.openai_models(openai, prices)
    elif o_status == 429:  # still show what could be used: the relay's priced models
        models += catalog.openai_models(catalog.price_listing(prices, "openai"), prices)
    if r_status == 200:
        models += catalog.openrouter_models(openrouter)
    page["models"] = models
    if not models and o_status != 401:
        notice("No models are available: this AI Pipe has no provider keys configured.")
    fill_models()


def fill_models() -> None:
    select = kit.node("model")
    query = str(kit.node("model-search").value)
    shown = catalog.search(page["models"], query)
    select.innerHTML = ""
    groups = {}
    for model in shown:
        group = groups.get(model["provider"])
        if group is None:
            group = kit.make("optgroup", None, label=catalog.PROVIDER_NAMES.get(
                model["provider"], model["provider"]))
            groups[model["provider"]] = group
            select.appendChild(group)
        option = kit.make("option", catalog.option_label(model), value=model["key"],
                          title=model["name"])
        group.appendChild(option)
    keys = [m["key"] for m in shown]
    if state["model"] in keys:
        select.value = state["model"]
    elif shown:
        select.value = shown[0]["key"]
    total = len(page["models"])
    kit.set_text("model-count", str(len(shown)) + " of " + money.plural(total, "model") +
                 (" match" if query.strip() else ""))
    show_price()


def selected_model():
    return catalog.find(page["models"], str(kit.node("model").value))


def show_price() -> None:
    model = selected_model()
    if model is None:
        kit.set_text("model-price", "")
        return
    text = catalog.PROVIDER_NAMES.get(model["provider"], "") + " · " + catalog.price_text(model)
    kit.set_text("model-price", text)


def on_model_change(_event) -> None:
    model = selected_model()
    if model:
        state["model"] = model["key"]
        save()
    show_price()
    refresh_code()


# -- the conversation -----------------------------------------------------------------------
def render_history() -> None:
    latest = None
    for message in state["messages"]:
        _article, content, line = chatview.message_element(
            message["role"], message["content"], message.get("meta"))
        if message["role"] == "assistant":
            latest = (content, line, message.get("meta") or {})
    if latest:
        chatview.mark_latest(latest[0], latest[1])
        kit.set_text("cost", latest[2].get("cost") or "—")
    chatview.scroll_down()


def new_chat(_event) -> None:
    if page["busy"]:
        return
    state["messages"] = []
    save()
    for element in kit.all_nodes("#messages article"):
        element.remove()
    kit.show("empty")
    kit.set_text("cost", "—")
    kit.set_text("cost-note", "")
    clear_notice()
    refresh_code()


def set_busy(busy) -> None:
    page["busy"] = busy
    kit.node("send").disabled = busy
    kit.node("stop").disabled = not busy


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
    model = selected_model()
    if model is None:
        return None, None, "Pick a model first."
    temp, limit, error = chat.parse_settings(kit.node("temperature").value,
                                             kit.node("max-tokens").value)
    if error:
        return None, None, error
    messages = chat.code_messages(state, prompt) if for_code else \
        chat.request_messages(state, prompt)
    return model, chat.request_body(model["provider"], model["id"], messages, temp, limit), None


async def send() -> None:
    prompt = str(kit.node("prompt").value).strip()
    if page["busy"] or not prompt:
        return
    model, body, error = current_request(prompt)
    if error:
        notice(error)
        return
    clear_notice()
    state["messages"].append({"role": "user", "content": prompt, "meta": {}})
    kit.node("prompt").value = ""
    user_article, _c, _l = chatview.message_element("user", prompt)
    article, content, line = chatview.message_element("assistant", "")
    content.classList.add("streaming")
    chatview.mark_latest(content, line)
    kit.set_text("cost", "…")
    kit.set_text("cost-note", "")
    chatview.scroll_down()
    set_busy(True)
    started = str(js.Date.new().toISOString())[:19]
    try:
        await stream_reply(model, body, prompt, user_article, article, content, line, started)
    finally:
        set_busy(False)
        page["stream"] = None
        refresh_code()


async def stream_reply(model, body, prompt, user_article, article, content, line, started):
    stream = chatstream.ChatStream()
    page["stream"] = stream
    status, data = await stream.open(catalog.CHAT_PATHS[model["provider"]],
                                     page["profile"]["token"], chat.body_json(body))
    if status != 200:
        undo_turn(prompt, user_article, article)
        if not stream.aborted:
            show_failure(status, data)
        return

    def progress(reply):
        richtext.render(content, reply.text, final=False)
        chatview.scroll_down()

    reply, stopped, failure = await stream.read(progress, RENDER_EVERY_MS)
    finish(model, reply, stopped, failure, content, line, started)
    kit.spawn(show_budget(page["profile"]["token"]))


def finish(model, reply, stopped, failure, content, line, started) -> None:
    content.classList.remove("streaming")
    richtext.render(content, reply.text)
    if reply.usage:
        pico, source = catalog.reply_cost(model, reply.usage)
        cost = catalog.format_pico(pico)
    elif stopped:
        cost, source = "estimating…", "pending"
    else:
        cost, source = "—", "unknown"
    meta = chat.reply_meta(model["id"], reply.usage, cost, source, stopped)
    state["messages"].append({"role": "assistant", "content": reply.text, "meta": meta})
    save()
    line.textContent = chat.meta_text(meta, catalog.usage_tokens(reply.usage))
    kit.set_text("cost", cost)
    kit.set_text("cost-note", "(" + chat.SOURCE_WORDS.get(source, "") + ")"
                 if source in chat.SOURCE_WORDS else "")
    if reply.error or failure:
        notice("The reply broke off: " + (reply.error or failure) + ". Send again to retry.")
    if stopped:
        kit.spawn(recorded_cost(model, meta, line, started))
    chatview.scroll_down()


async def recorded_cost(model, meta, line, started) -> None:
    """A stopped stream reports no usage: show the estimate the relay recorded for it."""
    for _ in range(ESTIMATE_POLLS):
        await asyncio.sleep(0.4)
        code, data = await kit.request_json("/usage/requests?limit=5",
                                            token=page["profile"]["token"])
        row = chat.recorded_row(data if code == 200 else None, model["id"], started)
        if row is not None:
            meta["cost"] = catalog.format_pico(catalog.scaled(row.get("cost"), 12))
            meta["source"] = row.get("cost_source") or "estimated"
            break
    else:
        meta["cost"], meta["source"] = "—", "unknown"
    save()
    line.textContent = chat.meta_text(meta, catalog.usage_tokens(meta.get("usage")))
    if state["messages"] and state["messages"][-1].get("meta") is meta:
        kit.set_text("cost", meta["cost"])
        kit.set_text("cost-note", "(" + chat.SOURCE_WORDS.get(meta["source"], "") + ")"
                     if meta["source"] in chat.SOURCE_WORDS else "")


def undo_turn(prompt, user_article, article) -> None:
    """A refused request is not part of the conversation: give the prompt back to edit."""
    if state["messages"] and state["messages"][-1]["role"] == "user":
        state["messages"].pop()
    save()
    user_article.remove()
    article.remove()
    kit.node("prompt").value = prompt
    kit.set_text("cost", "—")
    if not state["messages"]:
        kit.show("empty")


def stop(_event) -> None:
    if page["stream"] is not None:
        page["stream"].stop()


# -- show code -------------------------------------------------------------------------------
def toggle_code(_event) -> None:
    panel = kit.node("code-panel")
    panel.hidden = not panel.hidden
    kit.node("show-code").setAttribute("aria-expanded", "false" if panel.hidden else "true")
    refresh_code()


def refresh_code() -> None:
    if kit.node("code-panel").hidden:
        return
    prompt = str(kit.node("prompt").value).strip()
    model, body, error = current_request(prompt, for_code=True)
    if error:
        kit.set_text("code-snippets", error)
        return
    path = catalog.CHAT_PATHS[model["provider"]]
    kit.render_snippets("code-snippets",
                        codegen.all_code(kit.origin(), model["provider"], path, body))
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
        summary = money.spend_summary(data)
        kit.set_text("budget-left", summary["remaining"] + " of " + summary["limit"] +
                     " left (" + money.plural(summary["days"], "day") + " window)")
    elif code == 401:
        show_failure(code, data)


async def main() -> None:
    clean_address()
    profile = kit.load_profile()
    kit.show_who(profile)
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
    kit.on("model-search", "input", lambda _e: fill_models())
    kit.on("model", "change", on_model_change)
    kit.on("composer", "submit", on_submit)
    kit.on("prompt", "keydown", on_prompt_key)
    kit.on("prompt", "input", lambda _e: refresh_code())
    kit.on("stop", "click", stop)
    kit.on("new-chat", "click", new_chat)
    kit.on("show-code", "click", toggle_code)
    for name in ("system", "temperature", "max-tokens"):
        kit.on(name, "input", on_setting)
    try:
        await asyncio.gather(load_models(profile["token"]), show_budget(profile["token"]))
    finally:
        kit.mark_ready()


kit.spawn(main())
