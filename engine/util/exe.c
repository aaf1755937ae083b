/* Where the running binary is: built-in plugins and the Lua library are found beside it. */
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

const char *sl__exe_dir(void)
{
    static char dir[PATH_MAX];
    if (dir[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
        if (n <= 0)
            return NULL;
        dir[n] = '\0';
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
    }
    return dir;
}
