#include <stdio.h>
#include <string.h>

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

/* Backup tool: pack the project folder the user named into /backups and echo tar's messages. */
int backup_project(const char *project)
{
    char command[512];
    char line[256];

    if (project[0] == '\0' || project[0] == '-' || strspn(project, NAME_CHARS) != strlen(project))
        return -1;
    snprintf(command, sizeof(command),
             "tar -czf /backups/%s.tar.gz -C /home/projects %s 2>&1", project, project);
    FILE *out = popen(command, "r");
    if (out == NULL)
        return -1;
    while (fgets(line, sizeof(line), out) != NULL)
        printf("tar: %s", line);
    return pclose(out);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    return backup_project(argv[1]) == 0 ? 0 : 1;
}
