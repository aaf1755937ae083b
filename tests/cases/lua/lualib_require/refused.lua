-- Every way out of the two folders, and what is not Lua source, is refused.
local out = {}
for _, name in ipairs({ "../x", "..", "a..b", ".a", "a.", "/etc/passwd", "lib/counter",
                        "cmod", "cmod.core", "bytecode", "lib.broken", "string", "", "lib.cyc" }) do
  local ok, err = pcall(require, name)
  out[#out + 1] = ok and "loaded" or (err:gsub("'/[^']*/lua/", "'LIB/"))
end
local ok, err = pcall(require, 42)
out[#out + 1] = err
return out
