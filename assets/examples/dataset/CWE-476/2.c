#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_NAME "/.calc_history"

/* Build the path of the user's history file, $HOME/.calc_history; an empty string when it does not fit. */
static void history_path(char *out, size_t size)
{
    const char *home = getenv("HOME");
    size_t len = strlen(home);

    if (len + sizeof(HISTORY_NAME) > size) {
        out[0] = '\0';
        return;
    }
    memcpy(out, home, len);
    memcpy(out + len, HISTORY_NAME, sizeof(HISTORY_NAME));
}

int main(void)
{
    char path[4096];

    history_path(path, sizeof(path));
    if (path[0] == '\0')
        return 1;
    FILE *history = fopen(path, "a");
    if (history == NULL)
        return 1;
    fputs("session started\n", history);
    fclose(history);
    return 0;
}
