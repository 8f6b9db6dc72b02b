"""Real MCP servers for the tests, written with the official SDK's server API (mcp 2's MCPServer)."""
