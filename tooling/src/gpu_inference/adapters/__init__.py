"""One adapter per external tool. Each builds argument lists (never a shell string),
checks that its binary exists, sets explicit timeouts and raises typed errors."""
