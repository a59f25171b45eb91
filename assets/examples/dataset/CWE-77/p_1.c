#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"

/* Diagnostics page of a home router: ping the host that the admin typed in. */
int run_ping(const char *host)
{
    char command[300];

    if (strlen(host) > 253)
        return -1;
    if (host[0] == '\0' || host[0] == '-' || strspn(host, HOST_CHARS) != strlen(host))
        return -1;
    snprintf(command, sizeof(command), "ping -c 3 %s", host);
    return system(command);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s HOST\n", argv[0]);
        return 2;
    }
    return run_ping(argv[1]) == 0 ? 0 : 1;
}
