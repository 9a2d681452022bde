"""The dashboard at ``/ui``: a human signs in as one identity and watches and steps into
sessions through the same services and access rules as an agent over MCP."""
