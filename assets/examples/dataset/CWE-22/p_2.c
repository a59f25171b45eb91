#include <stdio.h>
#include <string.h>

#define NOTES_DIR "/var/lib/notebook"
#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

/* A user or note name may only hold letters, digits, '_' and '-'. */
static int is_plain_name(const char *name)
{
    size_t len = strlen(name);
    return len > 0 && strspn(name, NAME_CHARS) == len;
}

/* Print the note called `title` that belongs to `user`; both names come from the request. */
int print_note(const char *user, const char *title)
{
    char path[512];
    int ch;

    if (!is_plain_name(user) || !is_plain_name(title))
        return -1;
    int n = snprintf(path, sizeof(path), "%s/%s/%s.txt", NOTES_DIR, user, title);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -1;

    FILE *note = fopen(path, "r");
    if (note == NULL)
        return -1;
    while ((ch = fgetc(note)) != EOF)
        putchar(ch);
    fclose(note);
    return 0;
}

int main(int argc, char **argv)
{
    return argc == 3 && print_note(argv[1], argv[2]) == 0 ? 0 : 1;
}
