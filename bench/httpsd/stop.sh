#!/usr/bin/env bash
exec "$(dirname "$0")/../peer.sh" stop "$(dirname "$0")"
