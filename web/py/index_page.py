"""Landing page: this deployment's address, budget and ready-to-paste examples; for a signed-in
visitor, the first step is done and what is left of the budget shows."""

import money
import pagekit as kit
import snippets

config = kit.config()
base = kit.origin()
for element in kit.all_nodes(".base-url"):
    element.textContent = base
kit.set_text("budget", money.budget_text(config.get("budget")))
kit.set_text("version", config.get("version", ""))
if config.get("demo_model"):
    kit.set_text("demo-model", config["demo_model"])
    kit.show("demo-note")

profile = kit.load_profile()
kit.start_header(profile)
if profile:
    kit.node("step-signin").classList.add("done")
    kit.set_text("step-signin-title", "You are signed in")
    kit.hide("step-signin-text")
    kit.set_text("signed-in-text", "as " + profile["email"])
    kit.show("signed-in")
    kit.set_text("cta-token", "Your token and budget")
kit.render_snippets("snippets", snippets.all_snippets(base, demo_model=config.get("demo_model")))
kit.wire_copy(kit.node("copy-base"), lambda: base)
kit.mark_ready()


async def show_left() -> None:
    code, usage = await kit.request_json("/usage", token=profile["token"])
    if code == 200 and isinstance(usage, dict):
        kit.note_usage(profile, usage)
        summary = money.spend_summary(usage)
        kit.set_text("left", summary["remaining"] + " of " + summary["limit"])
        kit.show("left-fact")
    elif code == 401:  # the saved sign-in no longer works: the sign-in page says why
        kit.show_who(None)
        kit.node("step-signin").classList.remove("done")
        kit.set_text("step-signin-title", "Sign in again")
        kit.show("step-signin-text")
        kit.hide("signed-in")


if profile:
    kit.spawn(show_left())
