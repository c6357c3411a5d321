#!/usr/bin/env bash
"$(dirname "$0")/../backend.sh" start
exec "$(dirname "$0")/../peer.sh" start "$(dirname "$0")"
