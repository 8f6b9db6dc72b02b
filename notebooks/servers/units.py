"""A small MCP server for the mcp notebook: unit conversions, over stdio.

Written with the official MCP SDK's `MCPServer` (mcp 2: `pip install 'mcp>=2.3,<3'`); run it as
`python notebooks/servers/units.py`, or let llm_magic start it (`%llm_mcp add units -- ...`).
"""

from mcp.server.mcpserver import MCPServer

server = MCPServer("units")


@server.tool()
def celsius_to_fahrenheit(celsius: float) -> float:
    """Convert a temperature from degrees Celsius to degrees Fahrenheit.

    Args:
        celsius: The temperature in degrees Celsius.
    """
    return round(celsius * 9 / 5 + 32, 1)


@server.tool()
def km_to_miles(km: float) -> float:
    """Convert a distance from kilometres to miles.

    Args:
        km: The distance in kilometres.
    """
    return round(km / 1.609344, 1)


if __name__ == "__main__":
    server.run("stdio")
