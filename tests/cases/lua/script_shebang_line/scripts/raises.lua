#!/usr/bin/env lua
-- line 2
error("boom on line " .. 3)
