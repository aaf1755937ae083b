-- A module beside the workflow (lib/counter.lua, required as "lib.counter").
local M = { loads = 0, name = ..., path = select(2, ...) }
loaded_once = true            -- a global of the module's own _ENV, not the task's
M.loads = M.loads + 1
function M.bump() M.loads = M.loads + 1 return M.loads end
function M.sees() return type(sluice.url.join), type(vars), type(range), type(io) end
return M
