-- sluice.crawl: a breadth-first crawler for Lua steps (docs/lua.md, "sluice.crawl").
--
--   local crawl = require "sluice.crawl"
--   local pages, stats = crawl { start = "https://example.com/", max_depth = 2 }
--
-- Pages are fetched with sluice.http.get (the run's HTTP client: limits.http, robots.txt),
-- their links taken with sluice.html.select in the worker pool, resolved against the page's
-- final URL with sluice.url.join and deduplicated by sluice.url.normalize.
--
-- Exact depths with no wait at level ends: pages are fetched as soon as they are known (up
-- to `concurrency` at once), but the links of fetched pages are *processed* strictly in the
-- order the pages were discovered, which is the order of a plain one-at-a-time BFS queue. So
-- a page is queued at the depth a sequential BFS gives it, and the first `max_pages` pages
-- are the ones it would visit, while the next level's known pages are already in flight
-- during the last arrivals of a level.

local crawl = {}

local defaults = {
  max_depth = 2, max_pages = 100, concurrency = 16, links = "a", same_site = true,
}
local known = {
  start = "string or list", max_depth = "number", max_pages = "number",
  concurrency = "number", same_site = "boolean", prefix = "string or list",
  links = "string", follow = "function", on_page = "function", http = "table",
}

local function fail(fmt, ...)
  error("sluice.crawl: " .. string.format(fmt, ...), 0)
end

local function list_of(v)
  if type(v) == "string" then return { v } end
  return v
end

local function check(opts)
  if type(opts) ~= "table" then fail("the options must be a table, not a %s", type(opts)) end
  for key, value in pairs(opts) do
    local want = known[key]
    if want == nil then fail("unknown option '%s'", tostring(key)) end
    local t = type(value)
    if not (want == t or (want == "string or list" and (t == "string" or t == "table"))) then
      fail("option '%s' must be a %s, not a %s", key, want, t)
    end
  end
  if opts.start == nil then fail("option 'start' (a URL or a list of URLs) is required") end
  for _, key in ipairs({ "max_depth", "max_pages", "concurrency" }) do
    local v = opts[key]
    if v ~= nil and (math.type(v) ~= "integer" or v < (key == "max_depth" and 0 or 1)) then
      fail("option '%s' must be an integer of at least %d", key, key == "max_depth" and 0 or 1)
    end
  end
end

-- The scheme and authority of a normalised http(s) URL ("https://example.com:8443").
local function origin(url)
  return url:match("^(https?://[^/?#]*)")
end

-- The crawl's state and its filters, from the options.
local function new_state(opts)
  local st = {
    max_depth = opts.max_depth or defaults.max_depth,
    max_pages = opts.max_pages or defaults.max_pages,
    concurrency = opts.concurrency or defaults.concurrency,
    links = opts.links or defaults.links,
    follow = opts.follow, on_page = opts.on_page, http = opts.http,
    queue = {}, seen = {}, results = {}, origins = {}, prefixes = nil,
    next_fetch = 1, next_process = 1, processing = false, left = 0, failed = 0,
  }
  st.same_site = opts.same_site
  if st.same_site == nil then st.same_site = opts.prefix == nil end
  local starts = list_of(opts.start)
  for i, url in ipairs(starts) do
    local ok, norm = pcall(sluice.url.normalize, url)
    if not ok or not origin(norm) then fail("start URL %d is not an http(s) URL: %s", i, url) end
    st.origins[origin(norm)] = true
    starts[i] = norm
  end
  if opts.prefix ~= nil then
    st.prefixes = {}
    for i, p in ipairs(list_of(opts.prefix)) do
      local ok, abs = pcall(sluice.url.join, starts[1], p)
      if not ok then fail("prefix %d: %s", i, abs) end
      st.prefixes[#st.prefixes + 1] = abs
    end
  end
  return st, starts
end

-- Whether the crawl follows normalised URL `url` found on `page`.
local function wanted(st, url, page)
  local o = origin(url)
  if o == nil then return false end                  -- mailto:, javascript:, ftp:, ...
  if st.same_site and not st.origins[o] then return false end
  if st.prefixes then
    local any = false
    for _, p in ipairs(st.prefixes) do
      if url:sub(1, #p) == p then any = true break end
    end
    if not any then return false end
  end
  return st.follow == nil or st.follow(url, page) and true or false
end

local function enqueue(st, url, depth, parent)
  if st.seen[url] then return end
  if #st.queue >= st.max_pages then
    st.left = st.left + 1
    st.seen[url] = true
    return
  end
  st.seen[url] = true
  st.queue[#st.queue + 1] = { url = url, depth = depth, parent = parent }
end

-- The normalised form of `url`, resolved from `href` against a page's URL. A relative href
-- against a normalised base only needs its fragment dropped, unless it holds escapes:
-- that saves most calls to sluice.url.normalize, the crawl's main cost in C. Returns ok,
-- url as pcall does.
local function normalized(url, href, base_normal)
  if base_normal and not href:find("^[%a][%w+.-]*:") and not href:find("^//")
      and not url:find("%", 1, true) then
    return true, (url:gsub("#.*$", ""))
  end
  return pcall(sluice.url.normalize, url)
end

-- Queues the links of the fetched pages, in discovery order, as far as they have arrived.
-- One fiber at a time does it (the others' results wait in st.results for it).
local function advance(st)
  if st.processing then return end
  st.processing = true
  while st.next_process <= #st.queue and st.results[st.next_process] ~= nil do
    local i = st.next_process
    local page, hrefs = st.queue[i], st.results[i]
    st.results[i] = nil
    st.next_process = i + 1
    if hrefs and page.depth < st.max_depth then
      local base = page.final or page.url
      for _, href in ipairs(hrefs) do
        local ok, url = pcall(sluice.url.join, base, href)
        if ok then ok, url = normalized(url, href, page.final == nil) end
        if ok and not st.seen[url] and wanted(st, url, page) then
          enqueue(st, url, page.depth + 1, page.url)
        end
      end
    end
  end
  st.processing = false
end

local function is_html(response)
  local ctype = response.headers and response.headers["content-type"]
  return ctype == nil or ctype:lower():find("html", 1, true) ~= nil
end

-- Fetches page i: its record gets status (or error) and the callback's data; its links
-- (false when none are followed) go to st.results[i].
local function fetch(st, i)
  local page = st.queue[i]
  local ok, response = pcall(sluice.http.get, page.url, st.http)
  local hrefs = false
  if not ok then
    -- the request's own message, without the location pcall's error adds (this file's line)
    page.error = tostring(response):gsub("^.-crawl%.lua:%d+: ", "", 1)
    st.failed = st.failed + 1
    response = nil
  else
    page.status = response.status
    if response.url and response.url ~= page.url then page.final = response.url end
    if page.depth < st.max_depth and is_html(response) and response.body then
      hrefs = sluice.html.select(response.body, st.links, { attr = "href", all = true })
    end
  end
  if st.on_page then page.data = st.on_page(page, response) end
  st.results[i] = hrefs
end

-- One of `concurrency` workers: fetches known pages until every page is processed. A
-- worker with nothing to fetch while pages are in flight waits a little, then looks again.
local function worker(st)
  local idle = 0.001
  while true do
    local i = st.next_fetch
    if i <= #st.queue then
      st.next_fetch = i + 1
      fetch(st, i)
      advance(st)
      idle = 0.001
    elseif st.next_process > #st.queue then
      return true
    else
      advance(st)   -- in case the fiber that was taking links stopped short of a result
      sluice.sleep(idle)
      if idle < 0.008 then idle = idle * 2 end
    end
  end
end

--- Crawls breadth-first from opts.start; returns the pages in BFS order and stats.
function crawl.run(opts)
  check(opts)
  local st, starts = new_state(opts)
  for _, url in ipairs(starts) do enqueue(st, url, 0, nil) end
  local workers = math.min(st.concurrency, st.max_pages)
  sluice.map(range(1, workers), function() return worker(st) end, { concurrency = workers })
  local pages = {}
  for i, page in ipairs(st.queue) do
    pages[i] = { url = page.url, depth = page.depth, parent = page.parent, status = page.status,
                 final = page.final, error = page.error, data = page.data }
  end
  return pages, { pages = #pages, failed = st.failed, left = st.left }
end

return setmetatable(crawl, { __call = function(_, opts) return crawl.run(opts) end })
