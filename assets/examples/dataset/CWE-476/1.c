#include <stdio.h>
#include <string.h>

struct setting {
    const char *key;
    const char *value;
};

static const struct setting defaults[] = {
    {"theme", "dark"},
    {"language", "en"},
    {"autosave", "on"},
};

/* Return the value of `key`, or NULL when there is no such setting. */
const char *lookup(const char *key)
{
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (strcmp(defaults[i].key, key) == 0)
            return defaults[i].value;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *key = argc > 1 ? argv[1] : "theme";
    const char *value = lookup(key);

    printf("%s = %s (%zu characters)\n", key, value, strlen(value));
    return 0;
}
