-- What a task sees: its _ENV's own names, the types of names it may reach, ctx's keys.
local own = {}
for name in pairs(_ENV) do own[#own + 1] = name end
table.sort(own)
local reach = {}
for _, name in ipairs({ "io", "os", "package", "debug", "require", "load", "loadfile",
                        "dofile", "collectgarbage", "rawset", "print", "sluice", "string",
                        "vars", "steps", "env", "run", "workflow", "range", "json_encode" }) do
  reach[name] = type(_ENV[name])
end
-- The safe sandbox's require is the restricted one (library and workflow folder only):
-- Lua's own, which unsafe: true gives, returns the os library.
local restricted = not pcall(require, "os")
return { own = own, reach = reach, ctx = keys(ctx), mt = tostring(getmetatable(_ENV)),
         restricted = restricted }
