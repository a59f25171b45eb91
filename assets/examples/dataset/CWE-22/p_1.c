#include <stdio.h>
#include <string.h>

#define ASSET_ROOT "/srv/shop/assets/"

/* Send a static asset (logo, stylesheet) that a browser requested by name. */
int send_asset(FILE *client, const char *requested)
{
    char full_path[256];
    char chunk[512];
    size_t got;

    if (requested[0] == '/' || strstr(requested, "..") != NULL) {
        fputs("HTTP/1.0 403 Forbidden\r\n\r\n", client);
        return -1;
    }
    snprintf(full_path, sizeof(full_path), "%s%s", ASSET_ROOT, requested);

    FILE *asset = fopen(full_path, "rb");
    if (asset == NULL) {
        fputs("HTTP/1.0 404 Not Found\r\n\r\n", client);
        return -1;
    }
    fputs("HTTP/1.0 200 OK\r\n\r\n", client);
    while ((got = fread(chunk, 1, sizeof(chunk), asset)) > 0)
        fwrite(chunk, 1, got, client);
    fclose(asset);
    return 0;
}

int main(int argc, char **argv)
{
    return argc == 2 && send_asset(stdout, argv[1]) == 0 ? 0 : 1;
}
