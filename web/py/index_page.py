"""Landing page: fills in this deployment's address, budget and ready-to-paste examples."""

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
kit.show_who(profile)
if profile:
    kit.set_text("signed-in-text", "Signed in as " + profile["email"])
    kit.show("signed-in")
kit.render_snippets("snippets", snippets.all_snippets(base, demo_model=config.get("demo_model")))
kit.mark_ready()
