"""The engine and everything that runs it: the state machine every trigger feeds, the off-day
machine, the socket the CLI talks to, and `serve`. Above `core` and `platform`; no toolkit."""
