"""Pure logic: flag protocol, rules, config and the engine. No Qt import here."""
