-- A script returning its value directly.
local sum = 0
for _, s in ipairs(steps.squares) do
  sum = sum + s.value
end
return sum
