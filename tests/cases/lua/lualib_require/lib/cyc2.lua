local other = require "lib.cyc"
return other
