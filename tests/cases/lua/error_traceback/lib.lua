local function dig(t)
  return t.missing.field
end

function run(args, ctx)
  local v = dig({})
  return v
end
