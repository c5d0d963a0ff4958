"""From a URI list to decoded images: read, access policy, fetch (HTTP, SSRF guard, per-host
windows) and decode."""
