-- sluice.url on the RFC 3986 §5.4 examples and on tricky inputs; the same script runs on
-- the loop and in a worker (pool: true). `check` holds what each must give.
local base = "http://a/b/c/d;p?q"
local refs = {
  -- §5.4.1 normal examples
  "g:h", "g", "./g", "g/", "/g", "//g", "?y", "g?y", "#s", "g#s", "g?y#s", ";x", "g;x",
  "g;x?y#s", "", ".", "./", "..", "../", "../g", "../..", "../../", "../../g",
  -- §5.4.2 abnormal examples
  "../../../g", "../../../../g", "/./g", "/../g", "g.", ".g", "g..", "..g", "./../g",
  "./g/.", "g/./h", "g/../h", "g;x=1/./y", "g;x=1/../y", "g?y/./x", "g?y/../x", "g#s/./x",
  "g#s/../x", "http:g",
}
local join = {}
for _, ref in ipairs(refs) do join[#join + 1] = { ref, sluice.url.join(base, ref) } end

local parse = {}
for _, u in ipairs({ "http://[::1]:8080/p?q#f", "https://user:pw@Example.com/a%20b?x=%2F",
                     "http://example.com", "http://example.com?x", "HTTP://EXAMPLE.com:80/",
                     "ftp://u@[2001:db8::7]/x;type=a" }) do
  parse[#parse + 1] = { u, sluice.url.parse(u) }
end

local normalize = {}
for _, u in ipairs({ "HTTP://Example.COM:80/a/./b/../c#frag", "https://example.com:443",
                     "http://example.com:8080/x", "http://[::1]:80/a/../b",
                     "http://example.com/a%2fb/%7e%41", "http://u:p@Example.COM/",
                     "http://example.com/a/%2E%2E/b", "http://example.com/a?b=c#d" }) do
  normalize[#normalize + 1] = { u, sluice.url.normalize(u) }
end

local errors = {}
local function try(f, ...)
  local ok, err = pcall(f, ...)
  errors[#errors + 1] = ok and ("no error: " .. tostring(err)) or err
end
try(sluice.url.join, "x", "g")
try(sluice.url.join, "http://a/", "http://[::1")
try(sluice.url.join, "http://a/", "//[zz")
try(sluice.url.parse, "http://example.com/a b")
try(sluice.url.parse, "http://example.com:99999/")
try(sluice.url.parse, "")
try(sluice.url.normalize, "http://[::1/")
try(sluice.url.join, "http://a/", 12 < 3)

return { join = join, parse = parse, normalize = normalize, errors = errors,
         opaque = { sluice.url.join("http://a/b", "mailto:x@y"),
                    sluice.url.join("http://a/b", "javascript:void(0)") } }
