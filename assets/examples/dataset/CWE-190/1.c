#include <stdio.h>
#include <stdlib.h>

struct reading {
    unsigned int sensor_id;
    double value;
};

/* Copy `count` readings received from a sensor gateway into a fresh array. */
struct reading *copy_readings(const struct reading *incoming, unsigned int count)
{
    unsigned int bytes = count * (unsigned int)sizeof(struct reading);
    struct reading *copy = malloc(bytes);

    if (copy == NULL)
        return NULL;
    for (unsigned int i = 0; i < count; i++)
        copy[i] = incoming[i];
    return copy;
}

int main(void)
{
    unsigned int count;

    if (fread(&count, sizeof(count), 1, stdin) != 1 || count == 0)
        return 1;
    struct reading *batch = calloc(count, sizeof(struct reading));
    if (batch == NULL || fread(batch, sizeof(struct reading), count, stdin) != count)
        return 1;
    struct reading *kept = copy_readings(batch, count);
    printf("kept %u readings\n", kept != NULL ? count : 0);
    free(kept);
    free(batch);
    return 0;
}
