/*
 * remove_tree.h - deletes a test's scratch directory and everything in it,
 * so that a data directory left by one test cannot be read by the next.
 * Include once per test program, after defining _GNU_SOURCE (asprintf).
 */
#ifndef SB_TEST_REMOVE_TREE_H
#define SB_TEST_REMOVE_TREE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void remove_tree(const char *path)
{
    struct stat sb;
    DIR *d;

    if (lstat(path, &sb) != 0)
        return;
    if (!S_ISDIR(sb.st_mode) || (d = opendir(path)) == NULL) {
        unlink(path);
        return;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char *sub;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (asprintf(&sub, "%s/%s", path, e->d_name) < 0)
            break;
        remove_tree(sub);
        free(sub);
    }
    closedir(d);
    rmdir(path);
}

#endif /* SB_TEST_REMOVE_TREE_H */
