/*
 * ARRAY_SIZE: the number of elements of an array (not a pointer), the
 * one definition for the whole tree.
 */
#ifndef VESSEL_DEVICES_ARRAY_H
#define VESSEL_DEVICES_ARRAY_H

#define ARRAY_SIZE(array) (sizeof(array) / sizeof((array)[0]))

#endif
