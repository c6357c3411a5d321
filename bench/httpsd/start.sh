#!/usr/bin/env bash
exec "$(dirname "$0")/../peer.sh" start "$(dirname "$0")"
