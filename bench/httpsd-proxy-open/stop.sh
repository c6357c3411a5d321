#!/usr/bin/env bash
"$(dirname "$0")/../peer.sh" stop "$(dirname "$0")"
exec "$(dirname "$0")/../backend.sh" stop
