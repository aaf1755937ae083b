#!/usr/bin/env lua
local ok = true
local = 3
