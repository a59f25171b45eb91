#include <stdio.h>
#include <string.h>

#define LABEL_SIZE 32

/* Build a label such as "red,large,sale" from the tags given on the command line. */
void join_tags(char *label, size_t size, int count, char **tags)
{
    size_t used = 0;

    for (int i = 0; i < count; i++) {
        size_t len = strlen(tags[i]);
        if (used + (i > 0) + len + 1 > size)
            break;
        if (i > 0)
            label[used++] = ',';
        memcpy(label + used, tags[i], len);
        used += len;
    }
    label[used] = '\0';
}

int main(int argc, char **argv)
{
    char label[LABEL_SIZE];

    join_tags(label, sizeof(label), argc - 1, argv + 1);
    printf("label: %s\n", label);
    return 0;
}
