local other = require "lib.cyc2"
return other
